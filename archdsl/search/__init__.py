"""Architecture search: the space, the sampler, the driver, training, proxies and reports."""
