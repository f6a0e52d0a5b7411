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
{% macro make_temp_relation(base_relation, suffix='__dbt_tmp') %}{{ return(api.Relation.create(database=base_relation.database, schema=base_relation.schema, identifier=base_relation.identifier ~ suffix, type=base_relation.type)) }}{% endmacro %}
{% macro make_intermediate_relation(base_relation, suffix='__dbt_tmp') %}{{ return(make_temp_relation(base_relation, suffix)) }}{% endmacro %}
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
