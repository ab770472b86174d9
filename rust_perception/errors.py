"""User-facing errors: raised for bad input, printed as one line by the CLIs (exit code 2)."""


class UserError(Exception):
    """Bad input from the user: shown without a traceback."""


class ConfigError(UserError):
    """A configuration value or command-line argument is invalid."""


class DatasetError(UserError):
    """A dataset directory is missing, incomplete, corrupt or of the wrong kind."""


class BagError(UserError):
    """A rosbag2 recording is missing, unreadable, or lacks the topics or messages asked for."""
