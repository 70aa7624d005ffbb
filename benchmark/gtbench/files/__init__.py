"""Bytes on disk: atomic writes (``atomic``) and the verified asset cache (``assets``).

Owns how gtbench writes a file (temp + rename, so a reader never sees half of one) and how
it obtains weights and data (sha256-verified, cached, fetchable offline). The bottom layer:
it may import only :mod:`gtbench.errors` and the standard library.
"""
