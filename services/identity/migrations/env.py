from services.identity.app import create_app  # noqa: F401  (imports every model module)
from services.identity.db import Base
from shared.migrations import run_env

run_env(Base.metadata)
