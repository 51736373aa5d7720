from neuroplex.config import set_threads

set_threads(1)  # small batched networks run many times slower with 2 intra-op threads
