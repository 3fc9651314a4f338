"""Limit/offset paging that says so when its parameters are wrong, instead of silently
serving the first page (DRF's default quietly ignores `?limit=-1` or `?offset=x`)."""

from rest_framework.pagination import LimitOffsetPagination

from emotions import params


class StrictLimitOffsetPagination(LimitOffsetPagination):
    def get_limit(self, request):
        limit = params.integer(request.query_params, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit) if self.max_limit else limit

    def get_offset(self, request):
        return params.integer(request.query_params, self.offset_query_param, minimum=0) or 0

    def paginate_queryset(self, queryset, request, view=None):
        if "page" in request.query_params:
            raise params.BadParameter(
                "This list is paged with “limit” and “offset” (for example ?limit=50&offset=100); "
                "“page” is not used."
            )
        return super().paginate_queryset(queryset, request, view)
