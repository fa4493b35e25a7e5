#!/bin/bash
# Eight cluster workers as HyperQueue tasks on the workers of a running `hq server`.
# Each exits after ten idle minutes, which ends its task.
hq submit --array 1-8 --cpus 1 \
  --env AMORSIZE_CLUSTER_WORKER=nats://broker:4222 \
  --env AMORSIZE_CLUSTER_IDLE=600 \
  ./target/release/my-program
