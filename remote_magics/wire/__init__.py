"""The wire format both sides share, shipped with the engine: standard library and cloudpickle only.

- :mod:`.protocol`: our message types, their fields and frames, and the digests that sign frames.
- :mod:`.serialize`: cloudpickle with out-of-band buffers, packing of small items, proxies.
- :mod:`.streaming`: big frames streamed ahead of their message as signed chunks.
- :mod:`.dataport`: big frames over the engine's side TCP port, authenticated and digested.
- :mod:`.sources`: code by value keeps the file name, lines and label of the cell it was written in.
"""
