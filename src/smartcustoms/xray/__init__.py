"""X-ray image triage: synthetic scans, dataset loaders, an anchor-free detector run with ONNX Runtime,
declared-versus-seen conflicts that send a declaration to inspection (lane C3), and officer feedback."""
