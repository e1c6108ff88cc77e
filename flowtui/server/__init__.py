"""The HTTP front end (`flowtui serve`): FastAPI routes and request/response schemas over flowtui.core.live."""
