"""Task-agnostic data helpers: readers, tag schemes, windows and label alignment."""
