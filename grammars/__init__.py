"""Lark grammars, one per format, shipped as package data."""
