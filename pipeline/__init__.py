"""The umlogs pipeline: decode, parse, store, classify, export; and the CLI over them."""
