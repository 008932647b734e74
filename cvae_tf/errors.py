"""The user-error type: a mistake in a file, flag or value, which every command reports alike."""


class UserInputError(ValueError):
    """A mistake in the user's input (file, flag or value): one line, exit code 2, no traceback."""
