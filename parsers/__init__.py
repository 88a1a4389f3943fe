"""The format registry: one module per format, each with sniff() and parse()."""
