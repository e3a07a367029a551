from tests.api.conftest import client, live_server, settings  # noqa: F401 - shared fixtures
