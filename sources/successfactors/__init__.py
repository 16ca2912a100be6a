"""`type: successfactors` — SAP SuccessFactors Employee Central over OData v2."""

CONNECTOR = "SuccessFactorsSource"
