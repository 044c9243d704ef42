resource "aws_iam_role" "task" {
  name = "task"
}

resource "aws_ecs_service" "this" {
  name = "prober"
}
