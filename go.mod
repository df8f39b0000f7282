module mcplan.io/mcplan

go 1.26
