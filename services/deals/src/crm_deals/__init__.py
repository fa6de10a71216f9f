"""Atlas CRM deals service: pipelines, deals and stage moves, FX rates, documents."""
