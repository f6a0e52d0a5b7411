-- A starter model built on top of my_first_model (a view, the folder default).

select id
from {{ ref('my_first_model') }}
where id = 1
