"""The `sagemaker` platform: every model on one real-time endpoint, as inference components.

Modules, one concern each: `packing` (which variant hosts which model, how many copies fit an
instance), `validation` (`sagemaker_problems`), `containers` (image + environment per engine),
`api` (instance types SageMaker hosts on, from botocore), `iam`, `endpoint`,
`inference_components`, `autoscaling`, `alarms`, `dashboard`, and `platform` (the
`SageMakerPlatform` that composes them).

Deliberately empty of imports: config validation imports `validation` without pulling in any
Pulumi provider package.
"""
