resource "aws_iam_role" "task" {
  name = "task"
}

resource "aws_ecs_task_definition" "t" {
  family        = "t"
  task_role_arn = aws_iam_role.task.arn
  # the execution role was never declared
  execution_role_arn = aws_iam_role.execution.arn
}
