"""The reports, one module per exporter: each is an :class:`~monitoring.exports.base.Exporter`
subclass with its columns, formats and ``frame``. The registry (``monitoring.exports.registry``)
holds one object of each; a new report goes in a module here and into the registry.
"""
