"""Schedule types of other libraries and the composition types, one pydantic model each.

Each family's ``type`` is ``<library>.<name>`` and its fields are that library's parameter
names and defaults, so a configuration copies over verbatim.
"""
