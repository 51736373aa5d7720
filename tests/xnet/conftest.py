from neuroplex.config import set_threads

set_threads(1)
