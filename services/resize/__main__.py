from services.resize.app import create_app
from services.resize.config import ResizeServiceConfig
from shared.serve import serve

serve("resize", ResizeServiceConfig.from_env,
      lambda config: create_app(config.resize, sweep=config.sweep))
