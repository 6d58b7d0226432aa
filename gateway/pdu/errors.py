"""The one error the PDU codec raises."""


class PduError(ValueError):
    """Bad PDU input or an unencodable message. The message says which field / byte offset."""
