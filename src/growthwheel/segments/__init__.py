"""Segments and tags: declarative customer segments compiled to Ibis, saved segments with
membership history in the warehouse, manual and rule-based tags (see docs/segments.md).

- ``definition``: the JSON definition language (pydantic models, JSON Schema);
- ``compile``: definition → Ibis boolean expression over the customers (pure);
- ``scores``: where score conditions find RFM / lifecycle / CLV (one pluggable resolver);
- ``models`` / ``repository`` / ``service``: saved segments, refreshes, exports, tags;
- ``api`` (``/api/v1/segments``) and ``cli`` (``growthwheel segments`` / ``tags`` / ``personas``).
"""
