"""Clearance core: declarations from submission to release — validation, duty and tax, lanes, lifecycle."""
