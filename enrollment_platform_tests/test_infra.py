"""infra/: the CloudFormation templates are cfn-lint clean, least-privilege, encrypted and hardened, wired together
through exports that exist, and their S3, KMS, SNS and IAM parts deploy to moto's CloudFormation.

Parsing uses cfn-lint's decoder (it understands the !Ref/!Sub/!GetAtt short forms); intrinsic functions come back
as their long-form dicts ({"Fn::Sub": ...}), which is what the checks below walk.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from enrollment_platform.settings import Settings
from enrollment_platform.transforms.spark.glue import STEPS
from enrollment_platform_tests.conftest import IN_CI, REPO

try:
    from cfnlint.api import ManualArgs, lint_file
    from cfnlint.decode import decode
except ImportError:  # pragma: no cover - cfn-lint is a test dependency of infra/
    if IN_CI:
        raise
    pytest.skip("cfn-lint is not installed: pip install 'cfn-lint>=1,<2'", allow_module_level=True)

INFRA = REPO / "infra"
# deployment order (README "Deploying to AWS"): a stack only imports exports of stacks before it
STACK_ORDER = ["storage", "notifications", "catalog", "warehouse", "orchestration", "governance"]
GLUE_JOBS = list(STEPS)  # one Glue job per step the Dagster Glue job runner starts (<prefix>-<step>)
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
# cfn-lint findings we accept, by rule id, with the reason. None: zero errors, zero warnings, zero informational.
ALLOWED_LINT_RULES: dict[str, str] = {}

# The few statements allowed on Resource "*": APIs that have no resource-level permissions. Each entry names the
# condition key the statement must carry to narrow it (None: nothing narrower exists).
WILDCARD_RESOURCE_EXCEPTIONS: dict[str, tuple[str, str | None]] = {
    "lakeformation:GetDataAccess": (
        "Lake Formation credential vending has no resource-level permissions; LF grants decide what is vended",
        None,
    ),
    "cloudwatch:PutMetricData": ("no resource-level permissions (Glue job metrics)", "cloudwatch:namespace"),
    **{
        f"redshift-data:{action}": (
            "Data API statement calls take a statement id, not a resource ARN",
            "redshift-data:statement-owner-iam-userid",
        )
        for action in ("CancelStatement", "DescribeStatement", "GetStatementResult", "ListStatements")
    },
    **{
        f"lakeformation:{action}": (
            "Lake Formation permission-management APIs have no resource-level IAM permissions; the grantor's LF "
            "grant options (governance stack) bound what the orchestration role can grant",
            None,
        )
        for action in (
            "BatchGrantPermissions",
            "BatchRevokePermissions",
            "CreateDataCellsFilter",
            "DeleteDataCellsFilter",
            "GetDataCellsFilter",
            "GrantPermissions",
            "ListDataCellsFilter",
            "ListPermissions",
            "RevokePermissions",
            "UpdateDataCellsFilter",
        )
    },
}
# Resource policies whose Resource "*" means "this resource" (a key policy can only name the key it is attached to).
SELF_RESOURCE_POLICY_TYPES = {"AWS::KMS::Key"}
# Conditions that stop a service principal acting for another account (confused deputy).
CONFUSED_DEPUTY_KEYS = ("aws:SourceArn", "aws:SourceAccount", "kms:EncryptionContext:")

# The environment variables the Dagster deployment reads, each an output of one stack (output key = the variable in
# CamelCase: ENROLLMENT_RAW_URI <- EnrollmentRawUri).
DEPLOYMENT_VARIABLES = {
    "ENROLLMENT_RAW_URI": "storage",
    "ENROLLMENT_LAKE_URI": "storage",
    "ENROLLMENT_ARTIFACTS_URI": "storage",
    "ENROLLMENT_PII_SECRET_ID": "storage",
    "ENROLLMENT_PIPES_BUCKET": "storage",
    "ENROLLMENT_PIPES_PREFIX": "storage",
    "ENROLLMENT_SNS_TOPIC_ARN": "notifications",
    "ENROLLMENT_GLUE_DATABASE": "catalog",
    "ENROLLMENT_GLUE_JOB_PREFIX": "catalog",
    "ENROLLMENT_WAREHOUSE_URL": "warehouse",
    "ENROLLMENT_REDSHIFT_IAM_ROLE": "warehouse",
    "ENROLLMENT_REDSHIFT_WORKGROUP": "warehouse",
    "AWS_REGION": "orchestration",
}
ENV_OUTPUT = re.compile(r"^(Enrollment|Aws)[A-Z]")


# ---------------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------------


@cache
def template(stack: str) -> dict:
    decoded, errors = decode(str(INFRA / f"{stack}.yaml"))
    assert not errors, errors
    return decoded


def resources(stack: str, *types: str) -> Iterator[tuple[str, dict]]:
    for logical_id, resource in template(stack)["Resources"].items():
        if not types or resource["Type"] in types:
            yield logical_id, resource


def all_resources(*types: str) -> Iterator[tuple[str, str, dict]]:
    for stack in STACK_ORDER:
        for logical_id, resource in resources(stack, *types):
            yield stack, logical_id, resource


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def env_variable(output_key: str) -> str:
    """The README's rule (its awk one-liner): EnrollmentRawUri -> ENROLLMENT_RAW_URI."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", output_key).upper()


def texts(value: Any) -> list[str]:
    """What a value can render to, as text: Fn::Sub strings as written, Fn::If both branches; references to other
    resources or stacks render as ref:/import: markers (never a wildcard)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and len(value) == 1:
        (function, argument), *_ = value.items()
        if function == "Fn::Sub":
            return [argument if isinstance(argument, str) else argument[0]]
        if function == "Fn::If":
            return texts(argument[1]) + texts(argument[2])
        if function == "Fn::ImportValue":
            return [f"import:{texts(argument)[0]}"]
        if function in ("Ref", "Fn::GetAtt"):
            return [f"ref:{argument if isinstance(argument, str) else '.'.join(argument)}"]
    return [json.dumps(value)]


def is_wildcard_resource(text: str) -> bool:
    """Resource "*", or an ARN whose resource part is only a wildcard (arn:aws:s3:::*, arn:aws:glue:r:a:*)."""
    text = re.sub(r"\$\{[^}]*\}", "x", text)  # Fn::Sub variables (${AWS::Partition}, ${Bucket}) name something
    if text.strip() == "*":
        return True
    if text.startswith("arn:"):
        parts = text.split(":", 5)
        return len(parts) == 6 and parts[5].strip() in ("", "*")
    return False


def statements(document: dict) -> list[dict]:
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


def condition_keys(statement: dict) -> set[str]:
    return {key for operator in (statement.get("Condition") or {}).values() for key in operator}


def identity_policy_violations(document: dict, where: str) -> list[str]:
    """Least privilege for an identity policy (role inline policy, managed policy): Allow statements name every
    action (no "*", no "service:*", no "service:Get*"), never use NotAction/NotResource, and name their resources,
    except the listed APIs that only accept "*" (with their narrowing condition)."""
    found = []
    for index, statement in enumerate(statements(document)):
        label = f"{where} statement {statement.get('Sid', index)}"
        if statement.get("Effect") != "Allow":
            continue  # a Deny only narrows
        for key in ("NotAction", "NotResource", "NotPrincipal"):
            if key in statement:
                found.append(f"{label}: {key} grants everything else")
        actions = as_list(statement.get("Action"))
        if not actions:
            found.append(f"{label}: no Action")
        for action in actions:
            if not isinstance(action, str):
                found.append(f"{label}: computed action {action!r}")
            elif "*" in action or "?" in action:
                found.append(f"{label}: wildcard action {action!r}")
        wildcard = [t for r in as_list(statement.get("Resource")) for t in texts(r) if is_wildcard_resource(t)]
        if not as_list(statement.get("Resource")):
            found.append(f"{label}: no Resource")
        if wildcard:
            if "*" in actions:
                found.append(f"{label}: '*' action on '*' resource")
            for action in actions:
                exception = WILDCARD_RESOURCE_EXCEPTIONS.get(action) if isinstance(action, str) else None
                if exception is None:
                    found.append(f"{label}: {action!r} on resource {wildcard[0]!r}")
                elif exception[1] and exception[1] not in condition_keys(statement):
                    found.append(f"{label}: {action!r} on '*' needs a {exception[1]} condition")
    return found


def is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and any("*" in texts(v)[0] for p in principal.values() for v in as_list(p))


def resource_policy_violations(document: dict, where: str, self_resource: bool = False) -> list[str]:
    """Bucket, topic and key policies: Principal "*" only in a Deny with a condition (TLS-only and the like); Allow
    statements name their actions, never Principal "*", and a service principal comes with a confused-deputy
    condition; resources are named (a key policy's "*" is the key itself)."""
    found = []
    for index, statement in enumerate(statements(document)):
        label = f"{where} statement {statement.get('Sid', index)}"
        principal = statement.get("Principal")
        if "NotPrincipal" in statement:
            found.append(f"{label}: NotPrincipal")
        if statement.get("Effect") == "Deny":
            if is_everyone(principal) and not statement.get("Condition"):
                found.append(f"{label}: unconditional Deny to everyone")
            continue
        if is_everyone(principal):
            found.append(f"{label}: Allow to Principal '*'")
        for action in as_list(statement.get("Action")):
            if not isinstance(action, str) or "*" in action:
                found.append(f"{label}: wildcard action {action!r}")
        if isinstance(principal, dict) and "Service" in principal:
            keys = condition_keys(statement)
            if not any(key.startswith(prefix) for key in keys for prefix in CONFUSED_DEPUTY_KEYS):
                found.append(f"{label}: service principal without aws:SourceArn/SourceAccount condition")
        if not self_resource:
            for resource in as_list(statement.get("Resource")):
                if any(is_wildcard_resource(t) for t in texts(resource)):
                    found.append(f"{label}: Allow on resource '*'")
    return found


def trust_policy_violations(document: dict, where: str) -> list[str]:
    found = []
    for index, statement in enumerate(statements(document)):
        label = f"{where} trust statement {statement.get('Sid', index)}"
        if is_everyone(statement.get("Principal")):
            found.append(f"{label}: anyone may assume the role")
        for action in as_list(statement.get("Action")):
            if action not in ("sts:AssumeRole", "sts:TagSession"):
                found.append(f"{label}: unexpected trust action {action!r}")
    return found


def template_policy_violations(stack: str) -> list[str]:
    found = []
    for logical_id, resource in resources(stack):
        kind, props = resource["Type"], resource.get("Properties", {})
        where = f"{stack}:{logical_id}"
        if kind == "AWS::IAM::Role":
            found += trust_policy_violations(props["AssumeRolePolicyDocument"], where)
            for policy in props.get("Policies", []):
                found += identity_policy_violations(policy["PolicyDocument"], f"{where}/{policy['PolicyName']}")
            for arn in props.get("ManagedPolicyArns", []):
                found.append(f"{where}: attaches managed policy {arn!r} (write the statements here instead)")
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found += identity_policy_violations(props["PolicyDocument"], where)
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            found += resource_policy_violations(props["PolicyDocument"], where)
        elif kind == "AWS::KMS::Key":
            found += resource_policy_violations(props["KeyPolicy"], where, self_resource=True)
        elif kind in ("AWS::IAM::User", "AWS::IAM::AccessKey", "AWS::IAM::Group"):
            found.append(f"{where}: {kind} (long-lived credentials); use roles")
    return found


def is_data_key(value: Any) -> bool:
    """A reference to the customer-managed key of the storage stack (in it, or imported)."""
    if value in ({"Fn::GetAtt": ["DataKey", "Arn"]}, {"Ref": "DataKey"}):
        return True
    return texts(value) == ["import:enrollment-${Environment}-kms-key-arn"]


def imports(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Fn::ImportValue":
                yield texts(item)[0]
            else:
                yield from imports(item)
    elif isinstance(value, list):
        for item in value:
            yield from imports(item)


def exports(stack: str) -> dict[str, str]:
    """Export name -> output key."""
    return {
        texts(output["Export"]["Name"])[0]: key
        for key, output in template(stack).get("Outputs", {}).items()
        if "Export" in output
    }


# ---------------------------------------------------------------------------------------------------------------------
# (1) cfn-lint
# ---------------------------------------------------------------------------------------------------------------------


def test_the_templates_are_the_documented_stacks():
    assert sorted(p.stem for p in INFRA.glob("*.yaml")) == sorted(STACK_ORDER)
    assert not list(INFRA.glob("*.yml")) and not list(INFRA.glob("*.json"))


@pytest.mark.parametrize("stack", STACK_ORDER)
def test_cfn_lint_passes(stack):
    """Zero errors, warnings and informational findings (in several regions), unless allowed above with a reason."""
    matches = lint_file(INFRA / f"{stack}.yaml", config=ManualArgs(regions=LINT_REGIONS, include_checks=["I"]))
    findings = [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches]
    assert [f for f in findings if f.split()[0] not in ALLOWED_LINT_RULES] == []


# ---------------------------------------------------------------------------------------------------------------------
# (2) least privilege
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACK_ORDER)
def test_every_policy_is_least_privilege(stack):
    assert template_policy_violations(stack) == []


def test_every_wildcard_resource_exception_is_used():
    """The exception list stays the list of what the templates need, nothing more."""
    used = set()
    for _stack, _logical_id, resource in all_resources("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
        props = resource["Properties"]
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])] + as_list(props.get("PolicyDocument"))
        for document in documents:
            for statement in statements(document):
                if any(is_wildcard_resource(t) for r in as_list(statement.get("Resource")) for t in texts(r)):
                    used.update(as_list(statement["Action"]))
    assert used == set(WILDCARD_RESOURCE_EXCEPTIONS)


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/*"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:Get*"], "Resource": "arn:aws:s3:::bucket/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::*"}},
        {"Effect": "Allow", "Action": "glue:GetTable", "Resource": "arn:aws:glue:us-east-1:123456789012:*"},
        {"Effect": "Allow", "NotAction": "iam:CreateUser", "Resource": "arn:aws:s3:::bucket"},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
        {"Effect": "Allow", "Action": ["lakeformation:GetDataAccess", "s3:GetObject"], "Resource": "*"},
    ],
)
def test_the_least_privilege_check_refuses(statement):
    assert identity_policy_violations({"Statement": [statement]}, "bad")


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Publish", "Resource": "arn:aws:sns:r:a:t"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": "arn:aws:s3:::b/*"},
    ],
)  # fmt: skip
def test_the_resource_policy_check_refuses(statement):
    assert resource_policy_violations({"Statement": [statement]}, "bad")


def test_the_least_privilege_check_accepts_the_listed_exceptions():
    document = {
        "Statement": [
            {"Effect": "Allow", "Action": "lakeformation:GetDataAccess", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            },
            {"Effect": "Deny", "Action": "s3:*", "Resource": "*"},
        ]
    }
    assert identity_policy_violations(document, "ok") == []


# ---------------------------------------------------------------------------------------------------------------------
# (3) encryption, public access, TLS, logging
# ---------------------------------------------------------------------------------------------------------------------


def bucket_policies(stack: str) -> dict[str, dict]:
    """Bucket logical id -> its policy document."""
    return {
        props["Bucket"]["Ref"]: props["PolicyDocument"]
        for _, r in resources(stack, "AWS::S3::BucketPolicy")
        for props in [r["Properties"]]
    }


def denies_plain_http(document: dict) -> bool:
    return any(
        s.get("Effect") == "Deny"
        and is_everyone(s.get("Principal"))
        and (s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in statements(document)
    )


def test_every_bucket_is_encrypted_private_tls_only_versioned_and_logged():
    buckets = list(all_resources("AWS::S3::Bucket"))
    assert {logical_id for _, logical_id, _ in buckets} == {
        "AccessLogBucket",
        "RawBucket",
        "CuratedBucket",
        "ArtifactsBucket",
        "TrailBucket",
    }
    for stack, logical_id, resource in buckets:
        props = resource["Properties"]
        where = f"{stack}:{logical_id}"
        (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        default = rule["ServerSideEncryptionByDefault"]
        if logical_id == "AccessLogBucket":
            # S3 server access logging cannot deliver into an SSE-KMS bucket: SSE-S3 is the strongest it accepts
            assert default == {"SSEAlgorithm": "AES256"}, where
            assert "LoggingConfiguration" not in props, f"{where} must not log into itself"
        else:
            assert default["SSEAlgorithm"] == "aws:kms", where
            assert is_data_key(default["KMSMasterKeyID"]), where
            assert rule["BucketKeyEnabled"] is True, where
            target = props["LoggingConfiguration"]["DestinationBucketName"]
            assert target == {"Ref": "AccessLogBucket"} or texts(target) == [
                "import:enrollment-${Environment}-access-log-bucket"
            ], where
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, where
        assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, where
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, where
        assert resource["DeletionPolicy"] == "Retain", where
        assert denies_plain_http(bucket_policies(stack)[logical_id]), f"{where} has no TLS-only policy"


def test_the_key_rotates_and_every_encryption_setting_uses_it():
    (key,) = [r for _, _, r in all_resources("AWS::KMS::Key")]
    assert key["Properties"]["EnableKeyRotation"] is True
    (topic,) = [r["Properties"] for _, _, r in all_resources("AWS::SNS::Topic")]
    assert is_data_key(topic["KmsMasterKeyId"])
    (topic_policy,) = [r["Properties"]["PolicyDocument"] for _, _, r in all_resources("AWS::SNS::TopicPolicy")]
    assert denies_plain_http(topic_policy)
    (secret,) = [r["Properties"] for _, _, r in all_resources("AWS::SecretsManager::Secret")]
    assert is_data_key(secret["KmsKeyId"])
    (namespace,) = [r["Properties"] for _, _, r in all_resources("AWS::RedshiftServerless::Namespace")]
    assert is_data_key(namespace["KmsKeyId"]) and is_data_key(namespace["AdminPasswordSecretKmsKeyId"])
    assert namespace["ManageAdminPassword"] is True and "AdminUserPassword" not in namespace
    (workgroup,) = [r["Properties"] for _, _, r in all_resources("AWS::RedshiftServerless::Workgroup")]
    assert workgroup["PubliclyAccessible"] is False
    assert {"ParameterKey": "require_ssl", "ParameterValue": "true"} in workgroup["ConfigParameters"]
    (trail,) = [r["Properties"] for _, _, r in all_resources("AWS::CloudTrail::Trail")]
    assert is_data_key(trail["KMSKeyId"]) and trail["EnableLogFileValidation"] is True and trail["IsLogging"] is True


def test_glue_encrypts_everything_it_writes():
    (security,) = [r["Properties"] for _, r in resources("catalog", "AWS::Glue::SecurityConfiguration")]
    encryption = security["EncryptionConfiguration"]
    (s3,) = encryption["S3Encryptions"]
    assert s3["S3EncryptionMode"] == "SSE-KMS" and is_data_key(s3["KmsKeyArn"])
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert is_data_key(encryption["CloudWatchEncryption"]["KmsKeyArn"])
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    assert is_data_key(encryption["JobBookmarksEncryption"]["KmsKeyArn"])
    for _, resource in resources("catalog", "AWS::Glue::Job"):
        assert resource["Properties"]["SecurityConfiguration"] == {"Ref": "GlueSecurityConfiguration"}
    for _, resource in resources("catalog", "AWS::Glue::Crawler"):
        assert resource["Properties"]["CrawlerSecurityConfiguration"] == {"Ref": "GlueSecurityConfiguration"}


def test_the_trail_records_object_access_on_every_data_bucket():
    (trail,) = [r["Properties"] for _, r in resources("governance", "AWS::CloudTrail::Trail")]
    (selector,) = trail["AdvancedEventSelectors"]
    fields = {f["Field"]: f for f in selector["FieldSelectors"]}
    assert fields["eventCategory"]["Equals"] == ["Data"]
    assert fields["resources.type"]["Equals"] == ["AWS::S3::Object"]
    covered = {name for value in fields["resources.ARN"]["StartsWith"] for name in imports(value)}
    assert covered == {f"enrollment-${{Environment}}-{b}-bucket" for b in ("raw", "curated", "artifacts")}


def test_lake_formation_governs_the_lake():
    (settings,) = [r["Properties"] for _, r in resources("governance", "AWS::LakeFormation::DataLakeSettings")]
    assert settings["MutationType"] == "APPEND"  # adds the administrator, never replaces the account's list
    (location,) = [r["Properties"] for _, r in resources("governance", "AWS::LakeFormation::Resource")]
    assert list(imports(location["ResourceArn"])) == ["enrollment-${Environment}-curated-bucket"]
    assert location["UseServiceLinkedRole"] is False
    assert location["RoleArn"] == {"Fn::GetAtt": ["LakeFormationDataAccessRole", "Arn"]}
    (database,) = [r["Properties"] for _, r in resources("catalog", "AWS::Glue::Database")]
    assert database["DatabaseInput"]["CreateTableDefaultPermissions"] == []  # no IAMAllowedPrincipals
    granted = {
        texts(r["Properties"]["Principal"]["DataLakePrincipalIdentifier"])[0]
        for _, r in resources("governance", "AWS::LakeFormation::PrincipalPermissions")
    }
    assert granted == {
        f"import:enrollment-${{Environment}}-{role}-role-arn"
        for role in ("glue-job", "glue-crawler", "redshift", "orchestration")
    }


# ---------------------------------------------------------------------------------------------------------------------
# wiring: Glue scripts, cross-stack exports, outputs for the deployment
# ---------------------------------------------------------------------------------------------------------------------


def test_the_glue_jobs_run_the_glue_scripts_with_the_project_wheel():
    jobs = {texts(r["Properties"]["Name"])[0]: r["Properties"] for _, r in resources("catalog", "AWS::Glue::Job")}
    assert sorted(jobs) == sorted(f"enrollment-${{Environment}}-{job}" for job in GLUE_JOBS)
    for job in GLUE_JOBS:
        props = jobs[f"enrollment-${{Environment}}-{job}"]
        location = props["Command"]["ScriptLocation"]["Fn::Sub"]
        assert location[0] == f"s3://${{Bucket}}/glue_scripts/{job}.py"
        assert list(imports(location[1])) == ["enrollment-${Environment}-artifacts-bucket"]
        assert props["GlueVersion"] == "5.0"  # Python 3.11, the project's minimum
        modules = props["DefaultArguments"]["--additional-python-modules"]
        assert all("${ProjectWheelKey}" in text for text in texts(modules))
        assert props["Role"] == {"Fn::GetAtt": ["GlueJobRole", "Arn"]}


# the lake prefixes the Spark steps read and write (transforms/spark/glue.py and the assets' lake layout)
GLUE_LAKE_PREFIXES = ("staging", "curated", "quarantine", "dq_results", "restricted")


def glue_job_statements() -> dict[str, dict]:
    """The Glue job role's inline policy statements, by Sid."""
    (policy,) = dict(resources("catalog", "AWS::IAM::Role"))["GlueJobRole"]["Properties"]["Policies"]
    return {s["Sid"]: s for s in statements(policy["PolicyDocument"])}


def object_patterns(statement: dict) -> set[tuple[str, str]]:
    """(bucket export, key pattern) of each `arn:...:s3:::${Bucket}/<pattern>` resource of a statement."""
    found = set()
    for resource in as_list(statement["Resource"]):
        text, variables = resource["Fn::Sub"]
        (bucket,) = imports(variables)
        found.add((bucket, text.split("${Bucket}/", 1)[1]))
    return found


def test_the_glue_job_role_writes_only_the_step_prefixes_of_the_lake_and_the_pipes_prefix():
    by_sid = glue_job_statements()
    curated, artifacts = "enrollment-${Environment}-curated-bucket", "enrollment-${Environment}-artifacts-bucket"
    lake = by_sid["ReadAndWriteTheLakePrefixesOfTheSteps"]
    assert set(lake["Action"]) == {"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"}
    assert object_patterns(lake) == {(curated, f"{prefix}/*") for prefix in GLUE_LAKE_PREFIXES}
    pipes = (artifacts, f"{template('storage')['Outputs']['EnrollmentPipesPrefix']['Value']}*")
    assert pipes in object_patterns(by_sid["TempDirAndDagsterPipesMessages"])
    assert {"s3:GetObject", "s3:PutObject"} <= set(by_sid["TempDirAndDagsterPipesMessages"]["Action"])
    policy = dict(resources("orchestration"))["OrchestrationPolicy"]["Properties"]["PolicyDocument"]
    orchestration = {s["Sid"]: s for s in statements(policy)}
    assert object_patterns(orchestration["DagsterPipesMessages"]) == {pipes}


def test_the_redact_job_gets_the_pii_key_secret_its_role_may_read():
    secret = texts(dict(resources("storage"))["PiiHashKeySecret"]["Properties"]["Name"])[0]
    redact = dict(resources("catalog"))["RedactJob"]["Properties"]["DefaultArguments"]
    assert texts(redact["--pii_key_secret"]) == [secret]
    key = glue_job_statements()["ReadThePiiHashKey"]
    assert key["Action"] == "secretsmanager:GetSecretValue"
    assert texts(key["Resource"]) == [
        f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:{secret}-??????"
    ]


def test_every_import_is_exported_by_an_earlier_stack():
    exported: dict[str, str] = {}
    for stack in STACK_ORDER:
        for name in imports(template(stack)["Resources"]):
            assert name in exported, f"{stack} imports {name}, which no earlier stack exports"
        for name in exports(stack):
            assert name.startswith("enrollment-${Environment}-"), name
            assert name not in exported, f"{name} exported twice"
            exported[name] = stack


def test_the_outputs_name_the_deployment_variables():
    found = {}
    for stack in STACK_ORDER:
        for key, output in template(stack).get("Outputs", {}).items():
            if ENV_OUTPUT.match(key):
                variable = env_variable(key)
                assert texts(output["Description"])[0].startswith(f"{variable} - "), (stack, key)
                assert "Export" not in output, f"{stack}:{key}: deployment variables are read, not imported"
                found[variable] = stack
    assert found == DEPLOYMENT_VARIABLES


def test_the_readme_says_how_to_deploy_and_set_every_variable():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Deploying to AWS") :]
    for stack in STACK_ORDER:
        assert f"infra/{stack}.yaml" in section
    for variable in [*DEPLOYMENT_VARIABLES, "ENROLLMENT_ENV"]:
        assert variable in section, variable


# ---------------------------------------------------------------------------------------------------------------------
# (4) moto's CloudFormation
# ---------------------------------------------------------------------------------------------------------------------

REGION = "us-east-1"
ENVIRONMENT = "test"
ACCOUNT = "123456789012"  # moto's default account
# Resource types moto's CloudFormation cannot create (it has no model for them; it would skip them with a warning and
# drop every output that refers to them). The test leaves them out of the deployed copy and checks them statically.
NOT_IN_MOTO = {
    "AWS::S3::BucketPolicy": "bucket policies (TLS-only, log delivery, CloudTrail writes)",
    "AWS::SNS::TopicPolicy": "the topic's TLS-only policy",
    "AWS::SecretsManager::Secret": "the PII hashing key secret",
    "AWS::Glue::Database": "the Glue database",
    "AWS::Glue::Crawler": "the crawlers",
    "AWS::Glue::Job": "the Glue jobs",
    "AWS::Glue::SecurityConfiguration": "the Glue security configuration",
    "AWS::RedshiftServerless::Namespace": "the Redshift Serverless namespace",
    "AWS::RedshiftServerless::Workgroup": "the Redshift Serverless workgroup",
    "AWS::LakeFormation::DataLakeSettings": "Lake Formation settings",
    "AWS::LakeFormation::Resource": "the lake location registration",
    "AWS::LakeFormation::PrincipalPermissions": "Lake Formation grants",
    "AWS::CloudTrail::Trail": "the CloudTrail trail",
}
# Stand-in values for the exports of resources moto cannot create, provided by a stack of their own.
STAND_IN_EXPORTS = {
    f"enrollment-{ENVIRONMENT}-glue-database": f"enrollment_{ENVIRONMENT}",
    f"enrollment-{ENVIRONMENT}-redshift-workgroup-arn": (
        f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/00000000-0000-4000-8000-000000000000"
    ),
}
PARAMETERS = {
    "notifications": {"NotificationEmail": "data-team@example.com"},
    "orchestration": {"TrustedPrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/operator"},
    "governance": {"LakeFormationAdminArn": f"arn:aws:iam::{ACCOUNT}:role/operator"},
}


def refers_to(value: Any, names: set[str]) -> bool:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and item in names:
                return True
            if key == "Fn::GetAtt" and (item[0] if isinstance(item, list) else item.split(".")[0]) in names:
                return True
            if key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                if any(re.search(r"\$\{" + re.escape(n) + r"[.}]", text) for n in names):
                    return True
            if refers_to(item, names):
                return True
    elif isinstance(value, list):
        return any(refers_to(item, names) for item in value)
    return False


def moto_part(stack: str) -> tuple[dict, list[str]]:
    """The template without the resources moto cannot create and the outputs referring to them; and the names of
    the exports left out that way."""
    body = copy.deepcopy(template(stack))
    left_out = {name for name, r in body["Resources"].items() if r["Type"] in NOT_IN_MOTO}
    body["Resources"] = {name: r for name, r in body["Resources"].items() if name not in left_out}
    for resource in body["Resources"].values():
        depends = [d for d in as_list(resource.get("DependsOn")) if d not in left_out]
        resource.pop("DependsOn", None)
        if depends:
            resource["DependsOn"] = depends
    for resource in body["Resources"].values():
        # moto keeps a key policy or inline role policy given as a template object as a Python object (its KMS
        # validator then fails on it); CloudFormation takes them as JSON text as well, which moto handles
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::KMS::Key":
            props["KeyPolicy"] = {"Fn::ToJsonString": props["KeyPolicy"]}
        for policy in props.get("Policies", []) if resource["Type"] == "AWS::IAM::Role" else []:
            policy["PolicyDocument"] = {"Fn::ToJsonString": policy["PolicyDocument"]}
    missing_exports = []
    for key, output in list(body.get("Outputs", {}).items()):
        if refers_to(output["Value"], left_out):
            del body["Outputs"][key]
            if "Export" in output:
                missing_exports.append(texts(output["Export"]["Name"])[0].replace("${Environment}", ENVIRONMENT))
    return body, missing_exports


@pytest.fixture(scope="module")
def deployed():
    """Every stack's moto-deployable part, in the documented order, in one mocked account.

    Deployed: the KMS key and its alias, the raw, curated, artifacts, access-log and CloudTrail buckets (with their
    default encryption), the SNS topic with its e-mail subscription, and every IAM role, inline policy, managed policy
    and instance profile. Not deployable on moto (no CloudFormation model, see NOT_IN_MOTO): bucket and topic
    policies, the Secrets Manager secret, the Glue database, crawlers, jobs and security configuration, the Redshift
    Serverless namespace and workgroup, Lake Formation settings, registration and grants, and the CloudTrail trail;
    the two exports those would provide (Glue database, workgroup ARN) come from a stand-in stack. moto's S3 model also
    applies only the default encryption algorithm and key (and tags) from a template: BucketKeyEnabled, public access
    block, ownership, versioning, logging and lifecycle settings are checked statically above, not here.
    """
    moto = pytest.importorskip("moto")
    import boto3

    with pytest.MonkeyPatch.context() as patch, moto.mock_aws():
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION", "AWS_CONFIG_FILE"):
            patch.delenv(name, raising=False)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        session = boto3.Session(region_name=REGION)
        cloudformation = session.client("cloudformation")
        stand_in = {
            "Resources": {
                "Placeholder": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {"Name": "/enrollment/stand-in", "Type": "String", "Value": "stand-in exports"},
                }
            },
            "Outputs": {
                f"StandIn{i}": {"Value": value, "Export": {"Name": name}}
                for i, (name, value) in enumerate(STAND_IN_EXPORTS.items())
            },
        }
        cloudformation.create_stack(StackName=f"enrollment-{ENVIRONMENT}-stand-in", TemplateBody=json.dumps(stand_in))
        outputs: dict[str, dict[str, str]] = {}
        skipped_exports = []
        for stack in STACK_ORDER:
            body, missing = moto_part(stack)
            skipped_exports += missing
            parameters = {"Environment": ENVIRONMENT, **PARAMETERS.get(stack, {})}
            name = f"enrollment-{ENVIRONMENT}-{stack}"
            cloudformation.create_stack(
                StackName=name,
                TemplateBody=json.dumps(body),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                Capabilities=["CAPABILITY_NAMED_IAM"],
            )
            (description,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
            assert description["StackStatus"] == "CREATE_COMPLETE", (stack, description.get("StackStatusReason"))
            created = cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
            created_ids = {r["LogicalResourceId"] for r in created if r.get("PhysicalResourceId")}
            unconditional = {n for n, r in body["Resources"].items() if "Condition" not in r}
            assert unconditional <= created_ids <= set(body["Resources"]), stack  # nothing skipped silently
            outputs[stack] = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
        assert sorted(skipped_exports) == sorted(STAND_IN_EXPORTS)
        yield session, outputs


def test_moto_creates_the_encrypted_buckets(deployed):
    session, outputs = deployed
    s3 = session.client("s3")
    key_arn = outputs["storage"]["KmsKeyArn"]
    suffix = f"{ACCOUNT}-{REGION}"
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    expected = {f"enrollment-{ENVIRONMENT}-{role}-{suffix}" for role in ("raw", "curated", "artifacts", "cloudtrail")}
    assert names == expected | {f"enrollment-{ENVIRONMENT}-logs-{suffix}"}
    for bucket in expected:
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    (rule,) = s3.get_bucket_encryption(Bucket=f"enrollment-{ENVIRONMENT}-logs-{suffix}")[
        "ServerSideEncryptionConfiguration"
    ]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_moto_creates_the_rotating_key_with_its_policy(deployed):
    session, outputs = deployed
    kms = session.client("kms")
    key_arn = outputs["storage"]["KmsKeyArn"]
    metadata = kms.describe_key(KeyId=key_arn)["KeyMetadata"]
    assert metadata["Enabled"] is True and metadata["KeyManager"] == "CUSTOMER"
    assert metadata["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases(KeyId=metadata["KeyId"])["Aliases"]}
    assert aliases == {f"alias/enrollment-{ENVIRONMENT}": metadata["KeyId"]}
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["AccountAdministersAndDelegatesToIam"]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    trail = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/enrollment-{ENVIRONMENT}-s3-data-events"
    assert by_sid["CloudTrailEncryptsTheTrailLogs"]["Condition"]["StringEquals"]["aws:SourceArn"] == trail
    assert resource_policy_violations(policy, "deployed key policy", self_resource=True) == []


def test_moto_creates_the_encrypted_topic_and_subscription(deployed):
    session, outputs = deployed
    sns = session.client("sns")
    topic_arn = outputs["notifications"]["EnrollmentSnsTopicArn"]
    assert topic_arn == f"arn:aws:sns:{REGION}:{ACCOUNT}:enrollment-{ENVIRONMENT}-notifications"
    attributes = sns.get_topic_attributes(TopicArn=topic_arn)["Attributes"]
    assert attributes["KmsMasterKeyId"] == outputs["storage"]["KmsKeyArn"]
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "data-team@example.com")


def test_moto_creates_one_least_privilege_role_per_component(deployed):
    session, outputs = deployed
    iam = session.client("iam")
    roles = {r["RoleName"]: r for r in iam.list_roles()["Roles"]}
    trusted = {
        "glue-job": {"glue.amazonaws.com"},
        "glue-crawler": {"glue.amazonaws.com"},
        "redshift": {"redshift.amazonaws.com", "redshift-serverless.amazonaws.com"},
        "orchestration": {"ecs-tasks.amazonaws.com", f"arn:aws:iam::{ACCOUNT}:role/operator"},
        "lakeformation": {"lakeformation.amazonaws.com"},
    }
    assert set(roles) == {f"enrollment-{ENVIRONMENT}-{component}" for component in trusted}
    for component, principals in trusted.items():
        name = f"enrollment-{ENVIRONMENT}-{component}"
        trust = roles[name]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        assert {p for s in trust["Statement"] for v in s["Principal"].values() for p in as_list(v)} == principals
        assert trust_policy_violations(trust, name) == []
        documents = [
            iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
        ]
        for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
            documents.append(
                iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
            )
        assert documents, name
        for document in documents:
            document = json.loads(document) if isinstance(document, str) else document
            assert identity_policy_violations(document, name) == []  # resolved: imports and Subs filled in
    assert outputs["catalog"]["GlueJobRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/enrollment-{ENVIRONMENT}-glue-job"
    assert outputs["warehouse"]["EnrollmentRedshiftIamRole"] == roles[f"enrollment-{ENVIRONMENT}-redshift"]["Arn"]


def test_moto_resolves_the_orchestration_policy_to_this_deployment(deployed):
    session, outputs = deployed
    iam = session.client("iam")
    (attached,) = iam.list_attached_role_policies(RoleName=f"enrollment-{ENVIRONMENT}-orchestration")[
        "AttachedPolicies"
    ]
    assert attached["PolicyArn"] == outputs["orchestration"]["OrchestrationPolicyArn"]
    version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"]
    document = json.loads(document) if isinstance(document, str) else document
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    lake = outputs["storage"]["CuratedBucketName"]
    assert by_sid["ReadAndWriteTheLake"]["Resource"] == f"arn:aws:s3:::{lake}/*"
    assert by_sid["PublishNotifications"]["Resource"] == outputs["notifications"]["EnrollmentSnsTopicArn"]
    assert by_sid["UseTheDataKeyThroughS3SnsAndSecretsManager"]["Resource"] == outputs["storage"]["KmsKeyArn"]
    prefix = outputs["catalog"]["EnrollmentGlueJobPrefix"]  # GlueJobRunner.job_prefix: it starts <prefix>-<step>
    assert sorted(by_sid["RunTheGlueJobs"]["Resource"]) == sorted(
        f"arn:aws:glue:{REGION}:{ACCOUNT}:job/{prefix}-{job}" for job in GLUE_JOBS
    )
    pipes = f"arn:aws:s3:::{outputs['storage']['EnrollmentPipesBucket']}/{outputs['storage']['EnrollmentPipesPrefix']}*"
    assert by_sid["DagsterPipesMessages"]["Resource"] == pipes
    assert (
        by_sid["WarehouseCredentialsAndDataApi"]["Resource"]
        == STAND_IN_EXPORTS[f"enrollment-{ENVIRONMENT}-redshift-workgroup-arn"]
    )


def test_moto_resolves_the_glue_job_policy_to_this_deployment(deployed):
    session, outputs = deployed
    iam = session.client("iam")
    role = f"enrollment-{ENVIRONMENT}-glue-job"
    document = iam.get_role_policy(RoleName=role, PolicyName="glue-job")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    lake = outputs["storage"]["CuratedBucketName"]
    assert sorted(by_sid["ReadAndWriteTheLakePrefixesOfTheSteps"]["Resource"]) == sorted(
        f"arn:aws:s3:::{lake}/{prefix}/*" for prefix in GLUE_LAKE_PREFIXES
    )
    pipes = f"arn:aws:s3:::{outputs['storage']['EnrollmentPipesBucket']}/{outputs['storage']['EnrollmentPipesPrefix']}*"
    assert pipes in by_sid["TempDirAndDagsterPipesMessages"]["Resource"]
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:enrollment/{ENVIRONMENT}/pii-hash-key-??????"
    assert by_sid["ReadThePiiHashKey"]["Resource"] == secret


def test_moto_outputs_configure_the_deployment(deployed):
    """The deployable stacks' variables, as the README's one-liner exports them, give the `aws` settings."""
    _, outputs = deployed
    variables = {env_variable(k): v for stack in outputs.values() for k, v in stack.items() if ENV_OUTPUT.match(k)}
    suffix = f"{ACCOUNT}-{REGION}"
    assert variables == {
        "ENROLLMENT_RAW_URI": f"s3://enrollment-{ENVIRONMENT}-raw-{suffix}",
        "ENROLLMENT_LAKE_URI": f"s3://enrollment-{ENVIRONMENT}-curated-{suffix}",
        "ENROLLMENT_ARTIFACTS_URI": f"s3://enrollment-{ENVIRONMENT}-artifacts-{suffix}",
        "ENROLLMENT_SNS_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:enrollment-{ENVIRONMENT}-notifications",
        "ENROLLMENT_PIPES_BUCKET": f"enrollment-{ENVIRONMENT}-artifacts-{suffix}",
        "ENROLLMENT_PIPES_PREFIX": "dagster-pipes/",
        "ENROLLMENT_GLUE_JOB_PREFIX": f"enrollment-{ENVIRONMENT}",
        "ENROLLMENT_REDSHIFT_IAM_ROLE": f"arn:aws:iam::{ACCOUNT}:role/enrollment-{ENVIRONMENT}-redshift",
        "AWS_REGION": REGION,
    }  # the others refer to resources moto cannot create (secret, Glue database, workgroup)
    settings = Settings.from_env(environ={"ENROLLMENT_ENV": "aws", **variables})
    assert (settings.env, settings.raw_uri, settings.lake_uri) == (
        "aws",
        variables["ENROLLMENT_RAW_URI"],
        variables["ENROLLMENT_LAKE_URI"],
    )
