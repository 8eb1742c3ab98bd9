from services.resize.app import create_app
from shared.config import ResizeConfig
from shared.serve import serve

serve("resize", ResizeConfig.from_env, create_app)
