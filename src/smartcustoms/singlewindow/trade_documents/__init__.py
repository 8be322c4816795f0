"""Trade documents (invoice, packing list, bill of lading) cross-checked with the declaration, scans read by OCR."""
