"""REST API v1: thin views over the selectors, services and exporters the pages use, one module
per resource.

Each view starts as a page does, with a selector that is 404 for anything the user may not see,
narrowed to the token's clinic (``monitoring.api.auth``); writes call the same services as the
pages; output goes through the plain serializers of ``monitoring.api.serializers``. Nothing here
decides who may see what. Reads of patient data write an ACCESS entry in the audit trail
(``base.audit_access``). docs/api.md shows each integration task with curl.
"""
