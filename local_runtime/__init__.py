"""The local runtime: the synthesized stack, emulated by moto on this machine, serving the same API.

It provisions an emulated copy of the synthesized CloudFormation template, runs the state machine
from that template with moto's Step Functions interpreter, dispatches Lambda tasks to the
project's handlers in this process, and serves the API Gateway routes of the template over HTTP.
"""
