#!/bin/bash
# One cluster worker per task, one CPU each, for an hour; the driver runs elsewhere
# with AMORSIZE_CLUSTER=nats://broker:4222. The executable must be the driver's build.
#SBATCH --job-name=amorsize-workers
#SBATCH --ntasks=32
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
export AMORSIZE_CLUSTER_WORKER=nats://broker:4222
export AMORSIZE_CLUSTER_IDLE=600
srun ./target/release/my-program
