{# dbt's generic data tests, as dbt defines them: each selects the failing rows. #}
{% macro test_unique(model, column_name) %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{% endmacro %}

{% macro test_not_null(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{% endmacro %}

{% macro test_accepted_values(model, column_name, values, quote=True) %}
with all_values as (
    select {{ column_name }} as value_field, count(*) as n_records
    from {{ model }}
    group by {{ column_name }}
)
select *
from all_values
where value_field not in (
    {% for value in values -%}
    {% if quote %}'{{ value | replace("'", "''") }}'{% else %}{{ value }}{% endif %}{% if not loop.last %}, {% endif %}
    {%- endfor %}
)
{% endmacro %}

{% macro test_relationships(model, column_name, to, field) %}
with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),
parent as (
    select {{ field }} as to_field
    from {{ to }}
)
select from_field
from child
left join parent on child.from_field = parent.to_field
where parent.to_field is null
{% endmacro %}

{# dbt's relation-naming helpers (global project, adapters/relation.sql). #}
{# dbt-postgres and dbt-duckdb: a temporary table has no schema or database, and a time in its name. #}
{% macro make_temp_relation(base_relation, suffix='__dbt_tmp') %}{{ return(adapter.dispatch('make_temp_relation', 'dbt')(base_relation, suffix)) }}{% endmacro %}
{% macro default__make_temp_relation(base_relation, suffix) %}{{ return(api.Relation.create(database=base_relation.database, schema=base_relation.schema, identifier=base_relation.identifier ~ suffix, type=base_relation.type)) }}{% endmacro %}
{% macro postgres__make_temp_relation(base_relation, suffix) %}{{ return(base_relation.incorporate(path={"identifier": (base_relation.identifier ~ suffix ~ modules.datetime.datetime.now().strftime("%H%M%S%f"))[:63], "schema": none, "database": none})) }}{% endmacro %}
{% macro duckdb__make_temp_relation(base_relation, suffix) %}{{ return(base_relation.incorporate(path={"identifier": base_relation.identifier ~ suffix ~ modules.datetime.datetime.now().strftime("%Y%m%d%H%M%S%f"), "schema": none, "database": none})) }}{% endmacro %}
{% macro make_intermediate_relation(base_relation, suffix='__dbt_tmp') %}{{ return(api.Relation.create(database=base_relation.database, schema=base_relation.schema, identifier=base_relation.identifier ~ suffix, type=base_relation.type)) }}{% endmacro %}
{% macro make_backup_relation(base_relation, backup_relation_type, suffix='__dbt_backup') %}{{ return(api.Relation.create(database=base_relation.database, schema=base_relation.schema, identifier=base_relation.identifier ~ suffix, type=backup_relation_type)) }}{% endmacro %}
{# dbt's DDL helpers (global project, relations/table|view/create.sql); a temporary table has no schema. #}
{% macro create_table_as(temporary, relation, compiled_code, language='sql') %}{{ return(get_create_table_as_sql(temporary, relation, compiled_code)) }}{% endmacro %}
{% macro get_create_table_as_sql(temporary, relation, sql) -%}
create {% if temporary %}temporary {% endif %}table {% if temporary %}{{ relation.identifier }}{% else %}{{ relation }}{% endif %} as (
{{ sql }}
);
{%- endmacro %}
{% macro create_view_as(relation, sql) %}{{ return(get_create_view_as_sql(relation, sql)) }}{% endmacro %}
{% macro get_create_view_as_sql(relation, sql) -%}
create view {{ relation }} as (
{{ sql }}
);
{%- endmacro %}
{# dbt's naming macros, callable from templates (`generate_schema_name('raw')`); a project's own replace them, and sluice names nodes the same way without calling them. #}
{% macro generate_schema_name(custom_schema_name=none, node=none) -%}{{ return(adapter.dispatch('generate_schema_name', 'dbt')(custom_schema_name, node)) }}{%- endmacro %}
{% macro default__generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ target.schema }}_{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
{% macro generate_schema_name_for_env(custom_schema_name, node) -%}
  {%- if target.name == 'prod' and custom_schema_name is not none -%}{{ custom_schema_name | trim }}{%- else -%}{{ target.schema }}{%- endif -%}
{%- endmacro %}
{% macro generate_alias_name(custom_alias_name=none, node=none) -%}{{ return(adapter.dispatch('generate_alias_name', 'dbt')(custom_alias_name, node)) }}{%- endmacro %}
{% macro default__generate_alias_name(custom_alias_name=none, node=none) -%}
  {%- if custom_alias_name -%}{{ custom_alias_name | trim }}{%- elif node.version -%}{{ return(node.name ~ "_v" ~ (node.version | replace(".", "_"))) }}{%- else -%}{{ node.name }}{%- endif -%}
{%- endmacro %}
{% macro generate_database_name(custom_database_name=none, node=none) -%}{{ return(adapter.dispatch('generate_database_name', 'dbt')(custom_database_name, node)) }}{%- endmacro %}
{% macro default__generate_database_name(custom_database_name=none, node=none) -%}
  {%- if custom_database_name is none -%}{{ target.database }}{%- else -%}{{ custom_database_name | trim }}{%- endif -%}
{%- endmacro %}
{# dbt's merge statements, for packages that build their own incremental logic. #}
{% macro get_quoted_csv(column_names) -%}
  {%- set quoted = [] -%}{%- for col in column_names -%}{%- do quoted.append(adapter.quote(col)) -%}{%- endfor -%}{{ return(quoted | join(', ')) }}
{%- endmacro %}
{% macro get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}{{ return(adapter.dispatch('get_merge_sql', 'dbt')(target, source, unique_key, dest_columns, incremental_predicates)) }}{%- endmacro %}
{% macro default__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}
  {%- set conditions = [] -%}
  {%- for p in (incremental_predicates or []) -%}{%- do conditions.append(p) -%}{%- endfor -%}
  {%- set keys = [] if not unique_key else ([unique_key] if unique_key is string else unique_key) -%}
  {%- for key in keys -%}{%- do conditions.append('DBT_INTERNAL_SOURCE.' ~ key ~ ' = DBT_INTERNAL_DEST.' ~ key) -%}{%- endfor -%}
  {%- if not keys -%}{%- do conditions.append('FALSE') -%}{%- endif -%}
  {%- set names = dest_columns | map(attribute='name') | list -%}
  {%- set columns_csv = get_quoted_csv(names) -%}
  {%- set update_only = config.get('merge_update_columns') -%}
  {%- set exclude = config.get('merge_exclude_columns') or [] -%}
  {%- set updated = [] -%}
  {%- for name in (update_only or names) -%}{%- if name | lower not in (exclude | map('lower') | list) -%}{%- do updated.append(adapter.quote(name)) -%}{%- endif -%}{%- endfor -%}
  merge into {{ target }} as DBT_INTERNAL_DEST
  using {{ source }} as DBT_INTERNAL_SOURCE
  on ({{ conditions | join(') and (') }})
  {%- if keys %}
  when matched then update set
    {% for c in updated %}{{ c }} = DBT_INTERNAL_SOURCE.{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}
  {%- endif %}
  when not matched then insert ({{ columns_csv }})
  values ({% for c in names %}DBT_INTERNAL_SOURCE.{{ adapter.quote(c) }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
{% macro get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}{{ return(adapter.dispatch('get_delete_insert_merge_sql', 'dbt')(target, source, unique_key, dest_columns, incremental_predicates)) }}{%- endmacro %}
{% macro default__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates=none) -%}
  {%- set columns_csv = get_quoted_csv(dest_columns | map(attribute='name')) -%}
  {%- if unique_key -%}
  {%- set keys = [unique_key] if unique_key is string else unique_key -%}
  delete from {{ target }} as DBT_INTERNAL_DEST
  where ({{ keys | join(', ') }}) in (select distinct {{ keys | join(', ') }} from {{ source }} as DBT_INTERNAL_SOURCE)
  {%- for p in (incremental_predicates or []) %} and {{ p }}{% endfor %};
  {% endif -%}
  insert into {{ target }} ({{ columns_csv }})
  (select {{ columns_csv }} from {{ source }})
{%- endmacro %}
{# What materializations call (custom ones included). #}
{% macro load_cached_relation(relation) %}{{ return(adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier)) }}{% endmacro %}
{% macro load_relation(relation) %}{{ return(load_cached_relation(relation)) }}{% endmacro %}
{% macro run_hooks(hooks, inside_transaction=True) %}{% for hook in hooks if hook.get('transaction', true) == inside_transaction %}{% if hook.sql | trim %}{% call statement(auto_begin=inside_transaction) %}{{ hook.sql }}{% endcall %}{% endif %}{% endfor %}{% endmacro %}
{% macro should_revoke(existing_relation, full_refresh_mode=True) %}{{ return(existing_relation is not none) }}{% endmacro %}
{# sluice applies `grants` and `persist_docs` itself once the model is built. #}
{% macro apply_grants(relation, grant_config, should_revoke=True) %}{% endmacro %}
{% macro persist_docs(relation, model, for_relation=true, for_columns=true) %}{% endmacro %}
{% macro drop_relation_if_exists(relation) %}{% if relation is not none %}{{ adapter.drop_relation(relation) }}{% endif %}{% endmacro %}
