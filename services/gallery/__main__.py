from services.gallery.app import create_app
from shared.config import GalleryConfig
from shared.serve import serve

serve("gallery", GalleryConfig.from_env, create_app)
