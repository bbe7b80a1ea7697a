"""The admin console: server-rendered pages over the admin operations (issue 24).

Pure renderers, one module per page: data in, one HTML page out, every value escaped with ``html.escape``
(``layout.esc``). The routes (``recsys.api.routes.console``) fetch the data and call the same functions as the
JSON admin endpoints; the forms POST to this API's own origin, so the cookie rules of ``recsys.api.auth``
(SameSite=Strict, and ``Sec-Fetch-Site: same-origin`` or an equal ``Origin`` for a cookie write) cover them.
"""
