"""The API's routes, one module per resource: HTTP only (parameters, status codes, response models); the work
is the serving core's (``recsys.serving``) or the A/B service's (``recsys.abtest.service``)."""
