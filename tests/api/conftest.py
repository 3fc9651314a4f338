import pytest
from rest_framework.test import APIClient


@pytest.fixture
def client_for(make_user):
    """An API client signed in as a new user (session too, so pages work as well)."""

    def make(name, **extra):
        client = APIClient()
        client.user = make_user(name, **extra)
        client.force_authenticate(client.user)
        client.force_login(client.user)
        return client

    return make
