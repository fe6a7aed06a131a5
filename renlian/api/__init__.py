"""HTTP only: the FastAPI app, the Baidu envelope, parameter parsing and the endpoint routers."""
