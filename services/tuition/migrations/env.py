from services.tuition.app import create_app  # noqa: F401  (imports every model module)
from services.tuition.db import Base
from shared.migrations import run_env

run_env(Base.metadata)
