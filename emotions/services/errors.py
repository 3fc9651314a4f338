"""Typed errors of the services; the API turns them into 4xx answers with a message."""


class ServiceError(Exception):
    """A request the service refuses, with a message written for the user."""

    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Forbidden(ServiceError):
    status_code = 403


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    status_code = 409


class TooLarge(ServiceError):
    status_code = 413


class StorageUnavailable(ServiceError):
    """The server could not store a file (read-only, full): its fault, not the request's."""

    status_code = 503
