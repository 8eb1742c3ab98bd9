from services.upload.app import create_app
from shared.config import UploadConfig
from shared.serve import serve

serve("upload", UploadConfig.from_env, create_app)
