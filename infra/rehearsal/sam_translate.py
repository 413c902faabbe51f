"""SAM template -> CloudFormation template, offline, for infra/rehearsal/rehearse.py.

    python infra/rehearsal/sam_translate.py SAM.json OUT.json

Run by the SAM translator's own environment (.venv-sam: aws-sam-translator pins an older
pydantic than the app's), so this file imports nothing of the project. The translator is the
code CloudFormation runs for `Transform: AWS::Serverless-2016-10-31`; it needs a region
(AWS_DEFAULT_REGION) but makes no AWS call with the managed-policy map given below.
"""

from __future__ import annotations

import json
import sys

from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The translator looks up AWS managed policies only for functions that it must give a
    role of its own; every function here has an explicit role, so the map stays empty."""

    def load(self) -> dict[str, str]:
        return {}


def main(source: str, target: str) -> None:
    with open(source) as handle:
        template = json.load(handle)
    translated = transform(template, {}, NoManagedPolicies())
    with open(target, "w") as handle:
        json.dump(translated, handle, indent=2, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
