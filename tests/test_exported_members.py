"""The package's public surface is deliberate: adding or removing a name is a decision."""

import partitur


def test_exported_members() -> None:
    assert sorted(partitur.__all__) == sorted(
        [
            "Clock", "Conflict", "InvalidInput", "ManualClock", "NotFound", "PartiturError",
            "PayloadTooLarge", "PlanViolation", "RateLimited", "Settings", "StorageError",
            "SystemClock", "Unauthorized", "__version__", "create_app", "load_settings",
        ]
    )
    for name in partitur.__all__:
        assert hasattr(partitur, name), name
