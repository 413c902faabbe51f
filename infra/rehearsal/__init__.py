"""The deploy rehearsal: `make rehearse` (python -m infra.rehearsal [OUT_DIR]), the packaged
stack translated by SAM, created in moto's CloudFormation, and every function run from the
zip as Lambda runs it. Offline; nothing here ships to Lambda.

  rehearse.py          steps 1, 2 and 5: package, translate and lint, check the inventory
                       and wiring, the report
  rehearse_session.py  steps 3 and 4: the stack created in moto, a whole session through
                       the functions run from the zip
  lambda_run.py        the functions, the API Gateway and the event source mappings, as
                       Lambda runs them
  lambda_harness.py    one function's process (run by path, on .venv-lambda's interpreter)
  sam_translate.py     the SAM translator (run by path, on .venv-sam's interpreter)
  requirements-sam.txt, requirements-lambda-runtime.txt
                       the pins of those two environments (make rehearse-envs)
"""
