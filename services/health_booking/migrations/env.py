from services.health_booking.app import create_app  # noqa: F401  (imports every model module)
from services.health_booking.db import Base
from shared.migrations import run_env

run_env(Base.metadata)
