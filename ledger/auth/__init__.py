"""Who is calling and what they may see: users and bearer tokens (``tokens``), throttling of
failed authentications (``throttle``) and the access grants' table side (``grants``). The
``ledger users`` / ``ledger tokens`` commands are ``ledger/cli/auth.py``; the permission table
the API checks is ``api/permissions.py``."""
