"""Errors shown to the user.

Every error the library raises on purpose derives from :class:`AmpereError`; its message is a
full sentence a person can act on. Only the CLI maps them to exit codes.
"""


class AmpereError(Exception):
    """Base error: its message is displayed to the user as it is."""

    exit_code = 1


class BadInputError(AmpereError):
    """The user's input (a question, an option, a corpus file) cannot be used."""

    exit_code = 2


class EmptyQuestionError(BadInputError):
    """The question holds nothing but spaces and control characters."""


class QuestionTooLongError(BadInputError):
    """The question is over the length limit; ``length`` is what the user typed."""

    def __init__(self, message: str, length: int):
        super().__init__(message)
        self.length = length


class CorpusError(BadInputError):
    """The corpus folder or one of its files cannot be read as text."""


class ModelError(AmpereError):
    """The embedding model cannot be provisioned or loaded."""


class IndexUnusableError(AmpereError):
    """The index cannot be used as it is; the message says how to rebuild it."""


class IndexNotFoundError(IndexUnusableError):
    """No index at the given place."""


class IndexMismatchError(IndexUnusableError):
    """The index files disagree with their manifest, with each other, or with the model."""


class IndexBusyError(AmpereError):
    """Another build holds the index folder for too long."""


class StoreUnavailableError(AmpereError):
    """The vector store the index names cannot be used here (client missing, server unreachable)."""


class PackError(BadInputError):
    """A language or domain pack that does not exist or is malformed (``ampere-qa.toml`` names
    one the package does not ship, or a pack file was edited badly)."""
