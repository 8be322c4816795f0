"""Free-trade-zone transport monitoring: device protocols, corridor geometry, trip detectors, alerts."""
