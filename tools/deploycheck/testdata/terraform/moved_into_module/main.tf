module "task" {
  source = "./modules/task"
}

moved {
  from = aws_iam_role.task
  to   = module.task.aws_iam_role.task
}

moved {
  from = aws_ecs_service.prober
  to   = module.task.aws_ecs_service.prober
}

moved {
  from = aws_iam_role.execution
  to   = module.tsk.aws_iam_role.execution
}
