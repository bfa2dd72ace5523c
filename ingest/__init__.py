"""The single ingest pass: find a drive's inputs, read them in time order, split, index, tag."""
