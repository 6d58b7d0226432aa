"""The one error the STS codec raises."""


class StsError(ValueError):
    """Bad STS input: a malformed token, key or field value. The message says which."""
